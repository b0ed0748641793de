"""Model versions on live traffic: shadow -> canary -> promote / roll back, and the feedback that guards them.

* :mod:`server.rollout.config` -- the rollout file (stable / shadow / canary version + share), parsed strictly;
  one definition of the format, written by ``mangaassist model`` (model_repository/lifecycle/cli.py).
* :mod:`server.rollout.controller` -- :class:`~server.rollout.controller.RolloutController`: reloads the file
  without a restart (validated against Triton and the registry's gate records), pins each request to a version,
  runs shadow calls after the response, keeps the canary guards and rolls back automatically.
* :mod:`server.rollout.schedule` -- a rollout file's plan on a schedule: shadow -> canary steps -> promote, moved on
  or aborted on a Wilson/Newcombe bound of canary - stable escalation and thumbs-down rates, by one replica (a lease).
* :mod:`server.rollout.feedback` -- :class:`~server.rollout.feedback.FeedbackStore`: the ``Feedback`` RPC's
  records, attributed to the versions that answered (what the drift / traffic-log jobs read).
* :mod:`server.rollout.gate_records` -- the registry's read side: versions, aliases, "may this version answer
  customers" (shared with the build side's registry, model_repository/lifecycle/registry.py).
* :mod:`server.rollout.wiring` -- the parts for the composition root (server/app.py).

Deliberately no imports here: the build side imports ``config`` and ``gate_records`` alone.
"""
