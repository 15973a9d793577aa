"""Autoscaling of the consumer Deployment, in three parts named for their job:

* `policy`: the replica decision (pure): `desired_replicas(inputs, params, state)`;
* `inputs`: what one loop observed, turned into the policy's inputs (pure):
  parameters from the spec, the loop's memory, arrivals from queue counts and
  consumer counters (`consumer_metrics`), the status it reports;
* `loop`: the kopf timer that reads (`observe`: queue, Deployment, pods or
  Prometheus), asks the policy and sets `spec.replicas`.

`simulation` runs the same `inputs` and `policy` against a queueing model
(`imagepipe simulate`), so what is simulated is what runs.
"""
