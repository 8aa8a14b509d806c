package ocsp_test

import (
	"errors"
	"fmt"

	"github.com/workerca/workerca/revocation/ocsp"
)

// A request that does not parse is answered with an unsigned
// malformedRequest response.
func ExampleErrorResponse() {
	_, err := ocsp.ParseRequest([]byte("not DER"))
	if errors.Is(err, ocsp.ErrMalformed) {
		fmt.Printf("%x\n", ocsp.ErrorResponse(ocsp.MalformedRequest))
	}
	// Output: 30030a0101
}
