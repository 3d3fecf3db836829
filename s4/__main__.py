from s4.cli import main

raise SystemExit(main())
