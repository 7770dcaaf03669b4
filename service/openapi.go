package service

import _ "embed"

//go:embed openapi.json
var openAPI []byte
