"""The engine that applies a packet function to many rows, one module per phase.

1. ``identify``: vectorised input packet hashes (of the packet projected onto the function's
   parameters) and pipeline entry ids of a whole input (``InputPlan``);
2. ``lookup``: the result cache answers a batch of input hashes with one Arrow table;
3. ``dispatch``: one bounded window over the executor's ``submit_call``
   (``dispatch`` / ``call_each``), honouring ``preferred_concurrency`` and ``no_more_calls``;
4. ``write``: one batched writer (``RunWriter``) with one flush policy (``FlushPolicy``):
   results before the records pointing at them (``commits``: in a thread of their own while
   a shared run's calls go on).

A ``FunctionNode`` is the engine plus a pipeline-record sink; ``CachedFunctionPod`` uses the
identify, look-up and dispatch phases with its result cache as the sink.
"""
