// Package gcpiit verifies Google Compute Engine instance identity tokens
// (the gcp-iit enrollment method). It decides what a token proves and
// nothing else: it never signs certificates and keeps no replay ledger.
//
// A worker asks its metadata server for a token whose audience carries
// the CA's nonce:
//
//	curl -H 'Metadata-Flavor: Google' \
//	  'http://metadata/computeMetadata/v1/instance/service-accounts/default/identity?format=full&audience=<url-encoded aud>'
//
// and sends it as Evidence. The CA checks it against the exact audience
// it expects:
//
//	v, err := gcpiit.New(gcpiit.Config{Clock: clock}) // Google's JWKS, fetched and cached
//	id, err := v.Verify(ctx, gcpiit.Evidence{Token: tok}, gcpiit.Policy{
//		Audience:       publicURL + "/v1/enroll?nonce=" + nonce,
//		Projects:       []string{"my-project"},
//		MaxInstanceAge: 30 * time.Minute,
//	})
//	// id.InstanceID is the worker ID; id.TokenSHA256 is the replay key.
//
// Verify accepts a token only if it is a canonical compact JWS signed
// with RS256 by a key in Google's key set, iss is
// "https://accounts.google.com" (or "accounts.google.com"), aud equals
// Policy.Audience exactly, exp and iat hold within Leeway, it carries the
// google.compute_engine claim (format=full), its project is allowed and
// the instance is young enough. Each refusal wraps one sentinel error
// (ErrSignature, ErrAudience, ...); ErrKeysUnavailable means Google's key
// set could not be had and the request may be retried.
//
// # Key set
//
// By default the key set is fetched from DefaultJWKSURL on first use and
// cached for the response's Cache-Control max-age. A token with a kid the
// cache lacks triggers a refetch at most once per RefetchInterval. When a
// refetch fails, the cached set is used for up to MaxStale past its
// expiry. Air-gapped sites pin the set with Config.JWKSFile instead,
// holding either Google's v3 JWKS or its v1 {kid: PEM certificate} form.
//
// Package gcpiittest stands in for Google in tests: it mints real RS256
// tokens and serves their key set over real HTTPS.
package gcpiit
