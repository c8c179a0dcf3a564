"""The tunnel example: a billing service (server.yaml) and a shop that calls it (client.yaml)."""
