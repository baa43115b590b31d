"""The base of every refusal the domain raises.

A refusal is a request that was well formed but cannot be carried out: a value that cannot be right, a record
in a state that does not allow it, a rule of the program that forbids it. Each service defines its own
subclasses next to itself, named for what could not be done (`CannotEnroll`, `CannotDispense`). A refusal says
what and why (`message`) and carries a stable machine `code`; it knows nothing of HTTP. How an interface
answers each kind is its own business (the HTTP statuses are one table, `rems.interfaces.refusals`).
"""


class ActionRefused(Exception):
    code = "conflict"

    def __init__(self, message, *, code=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
