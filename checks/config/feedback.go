package config

import (
	"net"

	"chainmail/checks/secret"
)

// Feedback configures serve's feedback endpoint: POST /learn and GET
// /learn/stats on the metrics listener, through which `chainmail learn`
// (and a mail client's "report spam" button) trains every learner of the
// running engine. The endpoint is on when TokenFile is set.
type Feedback struct {
	// TokenFile holds the bearer token (at least 16 characters).
	TokenFile string `yaml:"token_file"`
}

// FeedbackToken reads the token of feedback.token_file ("" when the
// setting is empty), with an error at its line when it cannot be used.
func (f *File) FeedbackToken() (string, error) {
	if f.Feedback.TokenFile == "" {
		return "", nil
	}
	t, err := secret.ReadToken(f.Feedback.TokenFile)
	if err != nil {
		return "", f.errAt("feedback.token_file", "%v", err)
	}
	return string(t), nil
}

// validateFeedback: the endpoint lives on the metrics listener, which
// must then be there and on loopback (reports train the classifier; they
// must not come from the network).
func (f *File) validateFeedback() error {
	if f.Feedback.TokenFile == "" {
		return nil
	}
	if f.Metrics.Listen == "" {
		return f.errAt("feedback.token_file", "the feedback endpoint is served on the metrics listener: set metrics.listen (like 127.0.0.1:9469)")
	}
	host, _, err := net.SplitHostPort(f.Metrics.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return f.errAt("feedback.token_file", "the feedback endpoint is served on the metrics listener, and metrics.listen %q is not a loopback address (127.0.0.1:PORT, [::1]:PORT)", f.Metrics.Listen)
	}
	_, err = f.FeedbackToken()
	return err
}
