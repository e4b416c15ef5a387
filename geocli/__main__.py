from geocli.cli.main import main

main()
