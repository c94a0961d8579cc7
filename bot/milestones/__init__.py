"""A milestone's own actions: marking it done, moving its date, cutting its scope, and who may."""
