#include "http_status.h"

sy_str_t sy_http_reason(int status)
{
    switch (status) {
    case 100:
        return SY_STR("Continue");
    case 200:
        return SY_STR("OK");
    case 201:
        return SY_STR("Created");
    case 204:
        return SY_STR("No Content");
    case 400:
        return SY_STR("Bad Request");
    case 401:
        return SY_STR("Unauthorized");
    case 402:
        return SY_STR("Payment Required");
    case 403:
        return SY_STR("Forbidden");
    case 404:
        return SY_STR("Not Found");
    case 405:
        return SY_STR("Method Not Allowed");
    case 408:
        return SY_STR("Request Timeout");
    case 409:
        return SY_STR("Conflict");
    case 413:
        return SY_STR("Payload Too Large");
    case 414:
        return SY_STR("URI Too Long");
    case 415:
        return SY_STR("Unsupported Media Type");
    case 417:
        return SY_STR("Expectation Failed");
    case 422:
        return SY_STR("Unprocessable Entity");
    case 429:
        return SY_STR("Too Many Requests");
    case 431:
        return SY_STR("Request Header Fields Too Large");
    case 499:
        return SY_STR("Client Closed Request");
    case 500:
        return SY_STR("Internal Server Error");
    case 501:
        return SY_STR("Not Implemented");
    case 502:
        return SY_STR("Bad Gateway");
    case 503:
        return SY_STR("Service Unavailable");
    case 504:
        return SY_STR("Gateway Timeout");
    case 529:
        return SY_STR("Overloaded");
    default:
        return SY_STR("Status");
    }
}
