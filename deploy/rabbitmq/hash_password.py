"""Print a RabbitMQ password hash for definitions.json, as `rabbitmqctl hash_password` does
(RabbitMQ 3.11+; this one runs anywhere Python does): base64(salt + sha256(salt + password)),
a 4-byte random salt, hashing_algorithm rabbit_password_hashing_sha256.

    python deploy/rabbitmq/hash_password.py 'the password'
"""

import base64
import hashlib
import os
import sys


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The password_hash RabbitMQ's rabbit_password_hashing_sha256 stores for `password`."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(hash_password(sys.argv[1]))
