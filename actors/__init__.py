"""The actors: one module per actor, thin shells around one resource each (see ``messages``)."""
