package middleware

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// keyError is the type of the package's key errors, so tracing records a
// meaningful error type.
type keyError string

// Error returns the message.
func (e keyError) Error() string { return string(e) }

// ErrNoKey is returned (wrapped, with the reason) by the package's KeyFuncs
// when a request carries nothing to key it by: an unparsable RemoteAddr, a
// missing header, no route pattern. Match it with errors.Is. RateLimit
// answers such a request with 400 rather than pooling it with other clients.
var ErrNoKey error = keyError("middleware: no rate-limit key")

// keyMissing wraps ErrNoKey with the reason.
type keyMissing struct{ reason string }

func (e *keyMissing) Error() string { return "middleware: no rate-limit key: " + e.reason }
func (e *keyMissing) Unwrap() error { return ErrNoKey }

// ClientIP returns a KeyFunc that keys a request by the IP address of the
// connection's peer (Request.RemoteAddr, with or without a port). IPv4
// addresses key as themselves ("192.0.2.1"); IPv6 addresses are grouped by
// their /64 prefix ("2001:db8::/64"), since one subscriber usually holds a
// whole /64 and could otherwise rotate through 2^64 keys. IPv4-mapped IPv6
// addresses key as IPv4 and zones are dropped.
//
// ClientIP never reads X-Forwarded-For, Forwarded or X-Real-IP: any client
// can write them. Behind a reverse proxy, use TrustedProxies. A RemoteAddr
// that is not an IP address (a Unix socket peer, for instance) is an error
// wrapping ErrNoKey.
//
// ClientIP is the default KeyFunc of RateLimit.
func ClientIP() KeyFunc {
	return func(r *http.Request) (string, error) {
		if k, ok := keyIPv4Remote(r.RemoteAddr); ok {
			return k, nil // the common case, without allocating
		}
		a, ok := keyParseRemote(r.RemoteAddr)
		if !ok {
			return "", &keyMissing{reason: "RemoteAddr " + strconv.Quote(r.RemoteAddr) + " is not an IP address"}
		}
		return keyOf(a), nil
	}
}

// keyIPv4Remote returns the key of a RemoteAddr that is a plain IPv4
// address, "ip:port" or "ip", as a substring of it, so it costs no
// allocation; it reports false for anything else (IPv6, garbage), which the
// general path handles. The substring is the canonical form keyOf writes:
// netip.ParseAddr accepts only the four decimal octets, with no leading
// zeros. The port is checked as netip.ParseAddrPort does, so both paths
// accept the same addresses.
func keyIPv4Remote(s string) (string, bool) {
	host := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host = s[:i]
		if !keyValidPort(s[i+1:]) {
			return "", false
		}
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
		return "", false
	}
	return host, true
}

// keyValidPort reports whether s is a port as netip.ParseAddrPort takes it:
// decimal digits worth at most 65535.
func keyValidPort(s string) bool {
	if s == "" {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return true
}

// TrustedProxies returns a KeyFunc for a server behind reverse proxies whose
// addresses lie in cidrs ("10.0.0.0/8", "2001:db8::/32"; a bare address
// such as "192.0.2.7" means that one host). It panics, naming the value, on
// an entry that is neither.
//
// When the connection's peer (RemoteAddr) is one of the trusted proxies,
// the client is taken from, in order of preference:
//
//  1. X-Forwarded-For: scanning from the right (the hop nearest to us), the
//     first address that is not a trusted proxy. Entries left of it were
//     written by the client and are ignored. When every entry is trusted,
//     the leftmost is used; an unparsable entry ends the scan at the last
//     trusted address read.
//  2. Forwarded (RFC 7239): the for= parameters, by the same rule.
//  3. X-Real-IP, when it holds an IP address.
//  4. RemoteAddr itself.
//
// The first of those headers present decides: an X-Forwarded-For with no
// usable address keys by RemoteAddr rather than falling through to a
// header the proxies may not control. Each header is only as trustworthy
// as the proxies make it: they must append to X-Forwarded-For (or
// Forwarded) and overwrite X-Real-IP, and strip the ones they do not write.
//
// When the peer is not a trusted proxy, those headers are ignored and the
// peer's own address is the key, so a client cannot mint keys by spoofing
// them. Keys are formed as by ClientIP (IPv6 grouped by /64).
func TrustedProxies(cidrs ...string) KeyFunc {
	trusted := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		s := strings.TrimSpace(c)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				panic("middleware: TrustedProxies: invalid CIDR " + strconv.Quote(c))
			}
			p = netip.PrefixFrom(a.Unmap().WithZone(""), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		trusted = append(trusted, p.Masked())
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, error) {
		peer, ok := keyParseRemote(r.RemoteAddr)
		if !ok {
			return "", &keyMissing{reason: "RemoteAddr " + strconv.Quote(r.RemoteAddr) + " is not an IP address"}
		}
		if !isTrusted(peer) {
			return keyOf(peer), nil
		}
		if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
			if a, ok := keyFromXFF(xff, isTrusted); ok {
				return keyOf(a), nil
			}
			return keyOf(peer), nil
		}
		if fwd := r.Header["Forwarded"]; len(fwd) > 0 {
			if a, ok := keyFromForwarded(fwd, isTrusted); ok {
				return keyOf(a), nil
			}
			return keyOf(peer), nil
		}
		if v := r.Header["X-Real-Ip"]; len(v) > 0 {
			if a, ok := keyParseHost(v[0]); ok {
				return keyOf(a), nil
			}
		}
		return keyOf(peer), nil
	}
}

// keyFromXFF applies the rightmost-untrusted rule to the X-Forwarded-For
// lines: an empty element is skipped, an unparsable one ends the walk.
func keyFromXFF(lines []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	return keyRightmostUntrusted(lines, trusted, func(elem string) (netip.Addr, keyElem) {
		if a, ok := keyParseHost(elem); ok {
			return a, keyElemAddr
		}
		if strings.TrimSpace(elem) == "" {
			return netip.Addr{}, keyElemSkip
		}
		return netip.Addr{}, keyElemStop
	})
}

// keyFromForwarded applies the rightmost-untrusted rule to the for=
// parameters of RFC 7239 Forwarded lines: an element without for= is
// skipped, one whose for= is "unknown", "_hidden" or garbage ends the walk.
func keyFromForwarded(lines []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	return keyRightmostUntrusted(lines, trusted, func(elem string) (netip.Addr, keyElem) {
		v, has := keyForParam(elem)
		if !has {
			return netip.Addr{}, keyElemSkip
		}
		if a, ok := keyParseHost(v); ok {
			return a, keyElemAddr
		}
		return netip.Addr{}, keyElemStop
	})
}

// keyElem is what one element of a forwarding chain says.
type keyElem uint8

const (
	keyElemAddr keyElem = iota // an address
	keyElemSkip                // nothing: look further left
	keyElemStop                // garbage: trust nothing further left
)

// keyRightmostUntrusted walks the comma-separated elements of lines from
// the right, without allocating, and returns the first address that is not
// trusted; when every address is trusted, or an element stops the walk, it
// returns the leftmost address read so far (found false when none).
func keyRightmostUntrusted(lines []string, trusted func(netip.Addr) bool, parse func(string) (netip.Addr, keyElem)) (netip.Addr, bool) {
	var last netip.Addr
	found := false
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for {
			j := strings.LastIndexByte(s, ',')
			a, kind := parse(s[j+1:])
			switch kind {
			case keyElemStop:
				return last, found
			case keyElemAddr:
				if !trusted(a) {
					return a, true
				}
				last, found = a, true
			}
			if j < 0 {
				break
			}
			s = s[:j]
		}
	}
	return last, found
}

// keyForParam returns the value of the for= pair of one Forwarded element
// ("for=192.0.2.60;proto=http").
func keyForParam(elem string) (string, bool) {
	for elem != "" {
		var pair string
		pair, elem, _ = strings.Cut(elem, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
			return v, true
		}
	}
	return "", false
}

// keyParseRemote parses RemoteAddr, "ip:port" or a bare "ip".
func keyParseRemote(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// keyParseHost parses a forwarded address: "ip", "ip:port", "[ipv6]",
// "[ipv6]:port", optionally quoted and padded.
func keyParseHost(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// keyOf is the key of a client address: IPv4 as itself, IPv6 as its /64.
func keyOf(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// ByHeader returns a KeyFunc that keys a request by the value of the named
// request header (an API key, a tenant id). A request without it, or with
// it empty, is an error wrapping ErrNoKey, so RateLimit answers 400 instead
// of pooling such requests in one bucket.
//
// The header is written by the client: key by it only when the value is
// authenticated before or by the handler, or when a client choosing its
// own bucket is acceptable.
func ByHeader(name string) KeyFunc {
	if name == "" {
		panic("middleware: ByHeader name must not be empty")
	}
	key := http.CanonicalHeaderKey(name)
	reason := "header " + key + " is missing"
	return func(r *http.Request) (string, error) {
		if v := r.Header[key]; len(v) > 0 && v[0] != "" {
			return v[0], nil
		}
		return "", &keyMissing{reason: reason}
	}
}

// ByRoute returns a KeyFunc that keys a request by the pattern that routed
// it (Request.Pattern, such as "GET /items/{id}"), set by http.ServeMux and
// chi once they have matched a route. It never falls back to the raw URL
// path: clients choose paths freely, so keying by them would let anyone
// mint keys without bound.
//
// The pattern is only known after routing, so a rate limit keyed by route
// must run inside the router: mux.Handle(pattern, mw(h)) with ServeMux, or
// r.With(mw) / a Group's r.Use(mw) with chi. Outside it, the pattern is
// empty and ByRoute returns an error wrapping ErrNoKey (RateLimit answers
// 400), so a misplaced middleware shows at once. A route key alone is shared
// by every client; Compose(ByRoute(), ClientIP()) limits each client per
// route.
func ByRoute() KeyFunc {
	return func(r *http.Request) (string, error) {
		if r.Pattern == "" {
			return "", &keyMissing{reason: "request has no route pattern (place the middleware inside the router)"}
		}
		return r.Pattern, nil
	}
}

// Compose returns a KeyFunc that keys a request by every fn's key at once,
// as in Compose(ByRoute(), ClientIP()): two requests share a bucket only
// when all their keys are equal. Each key is written with its length in
// front ("5:GET /" ...), so no choice of keys can make two different
// combinations collide. The first error any fn returns is returned. With no
// fns it panics; nil fns panic too.
func Compose(fns ...KeyFunc) KeyFunc {
	if len(fns) == 0 {
		panic("middleware: Compose needs at least one KeyFunc")
	}
	for i, fn := range fns {
		if fn == nil {
			panic("middleware: Compose KeyFunc " + strconv.Itoa(i) + " is nil")
		}
	}
	fns = append([]KeyFunc(nil), fns...)
	return func(r *http.Request) (string, error) {
		var b strings.Builder
		for _, fn := range fns {
			k, err := fn(r)
			if err != nil {
				return "", err
			}
			b.WriteString(strconv.Itoa(len(k)))
			b.WriteByte(':')
			b.WriteString(k)
		}
		return b.String(), nil
	}
}
