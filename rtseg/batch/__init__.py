"""``rtseg batch``: many videos and streams at once, one input per Ray worker.

Modules, in the order a batch uses them: :mod:`~rtseg.batch.inputs` (globs, folders, list
files, URLs), :mod:`~rtseg.batch.plan` (every output named and checked before submission),
:mod:`~rtseg.batch.model` (the model shipped once), :mod:`~rtseg.batch.resources` (how many
workers, on which device), :mod:`~rtseg.batch.worker` (the actor: one session, one input at
a time), :mod:`~rtseg.batch.scheduler` (the driver's loop: retries, stopping),
:mod:`~rtseg.batch.manifest` (one JSON line per input) and :mod:`~rtseg.batch.cli`.
Only ``rtseg batch`` imports Ray (:mod:`~rtseg.batch.ray_runtime`).
"""
