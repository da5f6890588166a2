package reputation

import (
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/encoding/ianaindex"
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
		EnvFrom:    AddressDomain(s.EnvFrom),
		HeaderFrom: AddressDomain(s.HeaderFrom),
		ReplyTo:    AddressDomain(s.ReplyTo),
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

// AddressDomain is the lower-cased domain of addr ("" when it has none).
func AddressDomain(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
}

// OrgDomain is the registrable domain of host (public suffix + 1 label,
// as A-labels), "" for an IP literal, a single label or a bad name.
func OrgDomain(host string) string {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if host == "" || strings.HasPrefix(host, "[") || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return ""
	}
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		host = a
	} else if !isLDH(host) {
		return ""
	}
	org, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return ""
	}
	return org
}

// isLDH reports whether h is letters, digits, hyphens, dots and
// underscores only (names that idna refuses but DNS serves).
func isLDH(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Mailbox is one address of a header field with its display name.
type Mailbox struct {
	// Name is the decoded display name ("" when none).
	Name string
	// Address is local@domain as written (the domain not lower-cased).
	Address string
}

// Domain is the lower-cased domain of the address.
func (m Mailbox) Domain() string { return AddressDomain(m.Address) }

var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	enc, err := ianaindex.MIME.Encoding(charset)
	if err != nil || enc == nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(input), nil
}}}

// ParseMailboxes reads an address-list header value (From, Reply-To).
// Where the strict parser gives up it falls back to the text in the last
// angle brackets, or to the whole value when it looks like an address,
// so a sloppy header still yields its address.
func ParseMailboxes(value string) []Mailbox {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil
	}
	if as, err := addressParser.ParseList(value); err == nil {
		out := make([]Mailbox, 0, len(as))
		for _, a := range as {
			out = append(out, Mailbox{Name: a.Name, Address: a.Address})
		}
		return out
	}
	if lt := strings.LastIndexByte(value, '<'); lt >= 0 {
		if gt := strings.IndexByte(value[lt:], '>'); gt > 0 {
			name := strings.Trim(strings.TrimSpace(value[:lt]), `"`)
			if d, err := addressParser.WordDecoder.DecodeHeader(name); err == nil {
				name = d
			}
			return []Mailbox{{Name: name, Address: strings.TrimSpace(value[lt+1 : lt+gt])}}
		}
	}
	if strings.Count(value, "@") == 1 && !strings.ContainsAny(value, " \t<>,;") {
		return []Mailbox{{Address: value}}
	}
	return nil
}

// FirstMailbox is the first mailbox of value (zero when none).
func FirstMailbox(value string) Mailbox {
	if ms := ParseMailboxes(value); len(ms) > 0 {
		return ms[0]
	}
	return Mailbox{}
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
