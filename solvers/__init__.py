"""How time advances: the event-driven ideal solvers and the discrete rules."""
