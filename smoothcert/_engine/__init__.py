"""The Monte-Carlo engine: noise streams, the one block loop, and the reducers plugged into it."""
