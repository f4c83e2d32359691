@extends('layout', ['title' => 'Form'])

@section('content')
<form method="post" action="/form">
  <input type="hidden" name="_token" value="{{ $token }}">
  <input type="text" name="name">
  <button type="submit">Send</button>
</form>
@endsection
