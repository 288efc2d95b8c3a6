"""What a consumer of a built dataset uses.

The shard reader, the built-piece reader and training pairs (numpy only, no torch).
"""
