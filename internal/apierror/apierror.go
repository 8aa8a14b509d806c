// Package apierror is the JSON error answer of every workerca route
// (DESIGN.md "Interfaces"): {"error": {"code": "snake_case", "message":
// "..."}}. The server (package web) writes it; the clients in this module
// (the CLI, the agent, the verifier) read it with Parse.
package apierror

import "encoding/json"

// Body is the error answer as it goes over the wire.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the answer's stable code and human message.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Parse reads b as an error answer; ok is false when b is not one (not
// JSON, or no code).
func Parse(b []byte) (d Detail, ok bool) {
	var body Body
	if json.Unmarshal(b, &body) != nil || body.Error.Code == "" {
		return Detail{}, false
	}
	return body.Error, true
}
