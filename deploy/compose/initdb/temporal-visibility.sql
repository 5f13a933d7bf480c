-- Temporal keeps its visibility store (the Web UI's case lists and search attributes) in a second
-- database on the same server; POSTGRES_DB creates the first (temporal). Runs once, on an empty volume.
CREATE DATABASE temporal_visibility;
