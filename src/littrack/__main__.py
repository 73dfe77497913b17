from littrack.cli import main

main()
