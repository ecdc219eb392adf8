"""Migration scripts, oldest first (see each file's ``down_revision``)."""
