"""The processing steps, one module each; `imagepipe.processing` lists them in order."""
