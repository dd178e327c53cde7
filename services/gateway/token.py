"""Print a development token: python -m services.gateway.token --org ORG --user USER."""

import argparse

from services.gateway.auth import issue
from services.gateway.settings import GatewaySettings
from shared import settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--org", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--ttl-hours", type=float, default=12)
    args = parser.parse_args()
    config = settings.load(GatewaySettings)
    print(f"token for user {args.user} of organisation {args.org}, valid {args.ttl_hours} h:")
    print(
        issue(
            config.jwt_secret.get_secret_value(),
            args.org,
            args.user,
            int(args.ttl_hours * 3600),
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
        )
    )
