"""The runtime service: opens a task per chat message, runs the agent loop, stores every event.

It is the only DuckLM service that talks to a model server (llama-server or any
OpenAI-compatible endpoint). It never touches files or runs programs itself: that is the
tools service's job.
"""
