"""The fault suite (`make chaos`): presses of every button under SIGKILLs, a stopped broker, a restarted
database, a failing SMS provider, duplicated deliveries and dropped websockets; then a checker's table."""
