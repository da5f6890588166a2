package checks

import (
	"net/netip"
	"strings"
)

// ParsePrefix reads an address or a CIDR prefix as the configuration
// writes clients and networks (lists, greylist allow_clients, rbl own): a
// bare address is its own /32 or /128. Clients are matched unmapped, so
// an IPv4-mapped address or prefix (::ffff:10.0.0.0/104) is its IPv4
// form (10.0.0.0/8); a zone is dropped; host bits are cleared.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
