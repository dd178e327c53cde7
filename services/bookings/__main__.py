from services.bookings.app import BookingsSettings, build
from shared.service import run

if __name__ == "__main__":
    run(BookingsSettings, build)
