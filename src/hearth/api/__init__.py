"""Wire types shared by the server, the client, the CLI and the Python API."""
