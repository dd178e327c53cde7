from services.sms.app import SmsSettings, build
from shared.service import run

if __name__ == "__main__":
    run(SmsSettings, build)
