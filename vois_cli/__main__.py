from vois_cli.cli import main

main()
