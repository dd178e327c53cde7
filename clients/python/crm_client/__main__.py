import sys

from crm_client.cli import main

sys.exit(main())
