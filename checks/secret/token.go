package secret

import (
	"fmt"
	"os"
	"strings"
)

// MinTokenLength is the shortest bearer token accepted (the feedback
// endpoint's).
const MinTokenLength = 16

// ReadToken reads a bearer token from the file at path: its content
// without surrounding white space, at least MinTokenLength characters.
func ReadToken(path string) (Value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if len(t) < MinTokenLength {
		return "", fmt.Errorf("%s: the token must be at least %d characters (like: head -c 24 /dev/urandom | base64 > %s)", path, MinTokenLength, path)
	}
	return Value(t), nil
}
