package l2_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/stratacache/strata/l2"
)

// An adapter package registers its scheme in init, so that importing it is
// enough for l2.Open to understand its URLs.
func init() {
	l2.Register("myl2", openMyL2)
}

// openMyL2 validates the URL and opens the store.
func openMyL2(ctx context.Context, u *url.URL) (l2.Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("myl2: missing host in %q", u.Redacted())
	}
	return nil, fmt.Errorf("myl2: cannot reach %s", u.Host)
}

func ExampleRegister() {
	_, err := l2.Open(context.Background(), "myl2://cache.internal:7000")
	fmt.Println(err)
	// Output: myl2: cannot reach cache.internal:7000
}
