"""Developer management commands for Django: shell, servers, Solr and debugger hooks."""

__version__ = "0.1.0.dev0"
