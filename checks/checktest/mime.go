package checktest

import (
	"encoding/base64"
	"strings"
)

// Base64Lines is data in base64 as a mail part carries it: lines of 76
// characters, each ended by CRLF.
func Base64Lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	return b.String() + enc + "\r\n"
}
