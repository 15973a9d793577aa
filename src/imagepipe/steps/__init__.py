"""The processing steps, one module each; `imagepipe.pipeline` lists them in order."""
