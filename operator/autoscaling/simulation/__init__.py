"""`imagepipe simulate`: the autoscaling policy, KEDA's queue-length rule and a
fixed fleet in a discrete-event queueing model (`engine`), on synthetic
traffic (`traces`), with the controllers in `policies`."""
