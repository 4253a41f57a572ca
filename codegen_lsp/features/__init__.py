"""LSP glue: each module translates one family of requests to plain calls and back."""
