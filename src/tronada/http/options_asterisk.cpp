#include "tronada/http/options_asterisk.h"

#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

bool is_options_asterisk(const HTTPServerRequest& request) {
  return request.method == "OPTIONS" && request.uri == "*";
}

void answer_options_asterisk(HTTPServerRequest& request, std::string_view allow) {
  HTTPHeaders headers;
  headers.add("Allow", allow);
  headers.add("Content-Length", "0");
  request.connection->write_response(200, headers, {});
}

}  // namespace tronada
