"""One module per `quantserve` subcommand; each exposes `register(subparsers)` and imports heavy work lazily."""
