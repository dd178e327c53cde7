"""Message contracts: every command, reply and event body, defined once.

Producers are strict (the gateway validates with these models before it
publishes); consumers ignore unknown fields so that a newer producer does not
break an older consumer.
"""
