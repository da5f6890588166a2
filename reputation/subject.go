package reputation

import (
	"net"
	"strings"
	"time"

	"chainmail/checks/address"
)

// Subject is what a verdict is asked about: the senders of one message.
type Subject struct {
	// ClientIP is the SMTP client; nil when unknown.
	ClientIP net.IP
	// ReverseDNS is the client's verified reverse-DNS host as the MTA
	// saw it ("", "unknown" and "[…]" mean none).
	ReverseDNS string
	// HELO is the client's greeting.
	HELO string
	// EnvFrom, HeaderFrom and ReplyTo are addresses (local@domain); ""
	// when absent (EnvFrom "" is the null sender).
	EnvFrom, HeaderFrom, ReplyTo string
	// Auth are the message's authentication outcomes.
	Auth Auth
	// At is when the message was seen; zero means now.
	At time.Time
}

// Auth are authentication outcomes in RFC words ("pass", "fail", …; ""
// when the check did not run).
type Auth struct {
	DMARC, SPF, DKIM string
	// DMARCPolicy is the policy the From domain publishes (p=, or sp=
	// for a subdomain): "none", "quarantine", "reject"; "" when unknown.
	DMARCPolicy string
}

// Domains are the names a verdict is requested for, as the SDR log line
// shows them: hosts for reverse DNS and HELO, domains for the addresses.
// "" is "Not Present".
type Domains struct {
	ReverseDNS, HELO, EnvFrom, HeaderFrom, ReplyTo string
}

// Domains returns what s is asked about.
func (s Subject) Domains() Domains {
	return Domains{
		ReverseDNS: hostName(s.ReverseDNS),
		HELO:       strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s.HELO)), "."),
		EnvFrom:    address.Domain(s.EnvFrom),
		HeaderFrom: address.Domain(s.HeaderFrom),
		ReplyTo:    address.Domain(s.ReplyTo),
	}
}

// hostName normalises a reverse-DNS host; the MTA's placeholders for "no
// name" give "".
func hostName(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if h == "unknown" || strings.HasPrefix(h, "[") {
		return ""
	}
	return h
}

// prefixOf is the client's network as history tracks it: /24 for IPv4,
// /48 for IPv6.
func prefixOf(ip net.IP) string {
	if ip == nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return (&net.IPNet{IP: v4.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(48, 128)), Mask: net.CIDRMask(48, 128)}).String()
}
