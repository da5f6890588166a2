package quota

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"chainmail/checks"
)

// Config is the quota check's configuration.
type Config struct {
	Quotas  []Quota `yaml:"quotas"`
	Webhook Webhook `yaml:"webhook"`
}

// Quota is one limit on what one tracked party may send per period, like
// a cbpolicyd quota with its limits.
type Quota struct {
	// Name names the quota in logs, metrics and state keys.
	Name string `yaml:"name"`
	// Policy is logged as policy= (cbpolicyd's policy); "default" when
	// empty.
	Policy string `yaml:"policy"`
	// Track is what is counted: sasl_user ({auth_authen}), sender (the
	// envelope sender), sender_domain, client_ip (with IPv4Prefix and
	// IPv6Prefix), or recipient.
	Track string `yaml:"track"`
	// IPv4Prefix and IPv6Prefix group client addresses (track client_ip):
	// 32 and 64 by default (one IPv4 address, one IPv6 /64 network).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Period is the length of the sliding window.
	Period time.Duration `yaml:"period"`
	// Messages, Recipients and Size are the limits per Period (0 = no
	// such limit): messages received, recipients accepted, and bytes
	// received (with units: 50MiB).
	Messages   float64 `yaml:"messages"`
	Recipients float64 `yaml:"recipients"`
	Size       Amount  `yaml:"size"`
	// Action is what happens over the limit: defer (451 at RCPT), reject
	// (550 at RCPT), quarantine (the message is accepted and held) or
	// alert (accepted; only the log line, the metric and the webhook).
	Action string `yaml:"action"`
	// Reply is the SMTP reply for defer and reject: "451 4.7.1 text",
	// "4.7.1 text" or just a text.
	Reply string `yaml:"reply"`
}

// Webhook posts every quota alert as JSON to a URL.
type Webhook struct {
	// URL is where alerts are POSTed; "" turns the webhook off.
	URL string `yaml:"url"`
	// Headers are added to every request (Authorization: Bearer …).
	// Their values are secrets: never printed.
	Headers map[string]checks.Secret `yaml:"headers"`
	// Timeout bounds one request (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how often a failed POST is retried (default 5), with a
	// backoff doubling from Backoff (default 1s) up to a minute.
	Retries int           `yaml:"retries"`
	Backoff time.Duration `yaml:"backoff"`
	// Queue is how many alerts may wait (default 1000); more are dropped
	// and counted, never waited for: mail does not wait on the webhook.
	Queue int `yaml:"queue"`
	// Interval is the least time between two alerts for the same quota
	// and tracked party (default 10m; 0 posts every event), so a
	// compromised account sending thousands of messages raises one alert,
	// not thousands.
	Interval time.Duration `yaml:"interval"`
}

// DefaultConfig returns no quotas and the webhook's defaults.
func DefaultConfig() Config {
	return Config{Webhook: Webhook{Timeout: 5 * time.Second, Retries: 5, Backoff: time.Second, Queue: 1000, Interval: 10 * time.Minute}}
}

// Tracks.
const (
	TrackSASLUser     = "sasl_user"
	TrackSender       = "sender"
	TrackSenderDomain = "sender_domain"
	TrackClientIP     = "client_ip"
	TrackRecipient    = "recipient"
)

// Actions.
const (
	ActionDefer      = "defer"
	ActionReject     = "reject"
	ActionQuarantine = "quarantine"
	ActionAlert      = "alert"
)

// validate fills defaults and checks one quota.
func (q *Quota) validate() error {
	if q.Name == "" {
		return fmt.Errorf("quota: a quota without a name")
	}
	if strings.ContainsAny(q.Name, " ,\t\r\n") {
		return fmt.Errorf("quota %q: the name may not contain spaces or commas", q.Name)
	}
	if q.Policy == "" {
		q.Policy = "default"
	}
	switch q.Track {
	case TrackSASLUser, TrackSender, TrackSenderDomain, TrackRecipient:
	case TrackClientIP:
		if q.IPv4Prefix == 0 {
			q.IPv4Prefix = 32
		}
		if q.IPv6Prefix == 0 {
			q.IPv6Prefix = 64
		}
		if q.IPv4Prefix < 1 || q.IPv4Prefix > 32 || q.IPv6Prefix < 1 || q.IPv6Prefix > 128 {
			return fmt.Errorf("quota %q: ipv4_prefix must be 1-32 and ipv6_prefix 1-128", q.Name)
		}
	case "":
		return fmt.Errorf("quota %q: no track (want sasl_user, sender, sender_domain, client_ip or recipient)", q.Name)
	default:
		return fmt.Errorf("quota %q: unknown track %q (want sasl_user, sender, sender_domain, client_ip or recipient)", q.Name, q.Track)
	}
	if q.Track != TrackClientIP && (q.IPv4Prefix != 0 || q.IPv6Prefix != 0) {
		return fmt.Errorf("quota %q: ipv4_prefix and ipv6_prefix are for track client_ip", q.Name)
	}
	if q.Period <= 0 {
		return fmt.Errorf("quota %q: period must be a positive duration (like 1h)", q.Name)
	}
	for _, l := range []struct {
		name string
		v    float64
	}{{"messages", q.Messages}, {"recipients", q.Recipients}, {"size", float64(q.Size)}} {
		if l.v < 0 || math.IsNaN(l.v) || math.IsInf(l.v, 0) {
			return fmt.Errorf("quota %q: %s must be a positive number", q.Name, l.name)
		}
	}
	if q.Messages == 0 && q.Recipients == 0 && q.Size == 0 {
		return fmt.Errorf("quota %q: no limit (set messages, recipients or size)", q.Name)
	}
	switch q.Action {
	case "":
		q.Action = ActionDefer
	case ActionDefer, ActionReject, ActionQuarantine, ActionAlert:
	default:
		return fmt.Errorf("quota %q: unknown action %q (want defer, reject, quarantine or alert)", q.Name, q.Action)
	}
	return nil
}

// blocking reports whether the quota refuses recipients.
func (q *Quota) blocking() bool { return q.Action == ActionDefer || q.Action == ActionReject }

// reply splits the quota's reply into code and text, with the defaults
// of its action.
func (q *Quota) reply() (code, text string, err error) {
	class, defCode, defEnh := byte('4'), "451", "4.7.1"
	if q.Action == ActionReject {
		class, defCode, defEnh = '5', "550", "5.7.1"
	}
	s := strings.TrimSpace(q.Reply)
	if s == "" {
		s = "Sending quota exceeded"
		if q.Action == ActionDefer {
			s += ", try again later"
		}
	}
	code = defCode
	if len(s) >= 4 && s[3] == ' ' && isDigits(s[:3]) {
		code, s = s[:3], strings.TrimSpace(s[4:])
		if code[0] != class {
			return "", "", fmt.Errorf("quota %q: reply code %s does not fit action %s (want %cxx)", q.Name, code, q.Action, class)
		}
	}
	if len(s) >= 5 && s[0] >= '2' && s[0] <= '5' && s[1] == '.' {
		if s[0] != class {
			return "", "", fmt.Errorf("quota %q: enhanced code %s does not fit reply code %s", q.Name, strings.Fields(s)[0], code)
		}
	} else {
		s = defEnh + " " + s
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", "", fmt.Errorf("quota %q: the reply must be one line", q.Name)
	}
	return code, s, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Amount is a number of bytes, written as 1048576 or with a unit: K, KB,
// KiB, M, MB, MiB, G, GB, GiB (powers of 1024, as in the rest of the
// configuration).
type Amount float64

// UnmarshalText reads an amount.
func (a *Amount) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || i == 0 {
		return fmt.Errorf("%q is not a size (like 1048576, 512KiB, 50MiB)", s)
	}
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		v *= 1 << 10
	case "m", "mb", "mib":
		v *= 1 << 20
	case "g", "gb", "gib":
		v *= 1 << 30
	default:
		return fmt.Errorf("%q is not a size: unknown unit %q", s, s[i:])
	}
	*a = Amount(v)
	return nil
}

// MarshalText writes the amount in bytes.
func (a Amount) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(a), 'f', -1, 64)), nil
}
