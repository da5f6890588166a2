// Package address reads mail addresses and the names in them: the
// mailboxes of a From or Reply-To field, an address's domain, a host's
// registrable domain. It is a leaf: checks (whaling, reputation) and the
// SDR library (reputation) share it without importing each other.
package address

import (
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/encoding/ianaindex"

	"chainmail/checks/dns"
)

// Domain is the lower-cased domain of addr ("" when it has none).
func Domain(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
}

// OrgDomain is the registrable domain of a host or domain name as
// chainmail keys and compares senders by it (reputation history,
// whaling's own domains): the name is normalised first (trimmed,
// lower-cased, trailing dot dropped, U-labels to A-labels) and "" stands
// for "none" — an IP literal, a single label, a bad name, or a name that
// is itself a public suffix. The suffix rule itself is
// dns.OrganizationalDomain's, the one registrable-domain helper; the
// normalisation and the "" are on purpose (callers use "" as "no
// subject"), where dns.OrganizationalDomain expects a normalised name and
// returns a public suffix as itself.
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
	org, ok, _ := dns.OrganizationalDomainOK(host)
	if !ok {
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
func (m Mailbox) Domain() string { return Domain(m.Address) }

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
