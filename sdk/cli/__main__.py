from cadenza.cli._main import main

main()
