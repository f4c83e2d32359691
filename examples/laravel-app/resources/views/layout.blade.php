<!doctype html>
<html lang="{{ app()->getLocale() }}">
<head><meta charset="utf-8"><title>{{ $title ?? 'Askr demo' }}</title></head>
<body>
@yield('content')
</body>
</html>
