class ActionRefused(Exception):
    """A request that was well formed but cannot be carried out in the current state. Subclasses are defined
    next to the service that raises them. The API answers with `status` and the message as the detail."""

    status = 409
    code = "conflict"

    def __init__(self, message, *, code=None, status=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        elif code == "invalid":
            self.status = 400  # invalid input, found by a service rather than a serializer
