"""CLI subcommands, one module each: ``add_parser(subparsers)`` registers, ``run(args)`` executes."""
