"""The memory service (ducklm.memory.v1): texts remembered as vectors, found again by meaning.

It holds the memories (text, scope, task id, project, kind, tags, metadata) and their vectors,
in Qdrant Edge inside this process (default) or in a Qdrant server. It never moves a memory to
the long-term scope on its own: that is PromoteMemory, called for a person. It never talks to
llama-server and never computes an embedding itself: vectors come from the runtime's
EmbeddingService, and when the runtime has none the calls that need one fail with
FAILED_PRECONDITION, EMBEDDINGS_DISABLED.
"""
