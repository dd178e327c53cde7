"""Write a service's AsyncAPI document: python -m shared.tools.asyncapi leads > docs/asyncapi/leads.json"""

import importlib
import json
import sys

if __name__ == "__main__":
    name = sys.argv[1]
    module = importlib.import_module(f"services.{name}.app")
    settings_cls = module.SETTINGS
    service = module.build(settings_cls())
    print(json.dumps(json.loads(service.app.schema.to_specification().to_json()), indent=2))
