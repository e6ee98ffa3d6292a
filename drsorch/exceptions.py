"""The base of the services' refusals, which every app's services raise and the API answers."""


class ServiceError(Exception):
    """A refusal of a service. `message` is shown to users as is; the API answers
    `status_code` with the body of as_json() (see drsorch.api.exception_handler)."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def as_json(self) -> dict:
        """The API's error body: `{"detail", "code"}`, plus what a subclass adds."""
        return {"detail": self.message, "code": self.code}
